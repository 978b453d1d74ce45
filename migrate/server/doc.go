// Package server is a migtrace instance server: it hosts one VM and speaks
// HTTP on one address —
//
//	GET  /v1/instance            the instance's state and its last migration
//	POST /v1/migrate             {"source": "ADDR"}: pull the VM from ADDR
//	GET  /v1/migrate/stream?id=  the migration stream (HTTP upgrade; source side)
//	GET  /metrics                Prometheus metrics
//
// The destination of a migration is asked (POST /v1/migrate) and dials the
// source's /v1/migrate/stream, as in propolis. A server started without a
// VM waits for one to migrate in.
package server
