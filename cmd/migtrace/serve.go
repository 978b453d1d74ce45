package main

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/wire"
)

func newServeCommand() *cobra.Command {
	var (
		listen   string
		name     string
		boot     bool
		insecure bool
		vmf      vmFlags
		tlsf     tlsFlags
		tune     tuningFlags
		capf     capacityFlags
		tel      telemetryFlags
	)
	cmd := &cobra.Command{
		Use:   "serve --listen ADDR",
		Short: "Run an instance server hosting one VM",
		Long: `serve runs an instance server on ADDR. Its HTTP API:

  GET   /v1/instance                  the instance's state, its last migration
                                      and a running one's settings
  POST  /v1/migrate                   {"source": "ADDR", "settings": {...}}: pull
                                      the VM from the server at ADDR; settings
                                      (optional, this migration only, over the
                                      flags): max_bandwidth (bytes/s),
                                      downtime_target_ns, max_rounds,
                                      auto_converge, clock_skew_correction,
                                      skip_memory_checksum
  GET   /v1/migrations/ID             this side's handoff record of migration ID
  POST  /v1/migrations/ID/resolve     {"action": "commit"|"abort"}: settle a
                                      handoff left pending
  POST  /v1/migrations/ID/cancel      {"by": "NAME"} (optional): cancel before
                                      the handoff (409 from then on)
  PATCH /v1/migrations/ID/settings    {"max_bandwidth": ..., ...}: change a
                                      running migration's max_bandwidth,
                                      downtime_target_ns, max_rounds or
                                      auto_converge (POST works too)
  GET   /metrics                      Prometheus metrics

Either server of a migration takes a cancel or a settings change and
tells the other; the tuning flags are the defaults a migration's own
settings override.

Migration streams reach the server through the same address (an HTTP
upgrade). With --boot it boots a fresh VM; without, it waits for one to
migrate in; it refuses a VM beyond --max-guest-memory or --max-vcpus
(a migration then fails in Sync, and the VM stays on its source). On a
non-loopback address it refuses to start without mutual
TLS (--tls-cert, --tls-key, --tls-ca) unless --insecure is given.`,
		Example: `  migtrace serve --listen 127.0.0.1:7001 --boot --memory 256MiB --dirty-rate 64MiB
  migtrace serve --listen 127.0.0.1:7002`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" {
				return usageErrorf("missing required flag --listen")
			}
			if err := checkAddr("--listen", listen, true); err != nil {
				return err
			}
			tlsOn, err := tlsf.enabled()
			if err != nil {
				return err
			}
			if !tlsOn && !insecure && !isLoopback(listen) {
				return usageErrorf("--listen %s is not a loopback address: give --tls-cert, --tls-key and --tls-ca, or --insecure to accept anyone who can reach it", listen)
			}
			log, err := tel.logger(cmd)
			if err != nil {
				return err
			}
			limits, err := capf.limits(cmd.Flags())
			if err != nil {
				return err
			}
			backend, spec, err := vmf.build(limits)
			if err != nil {
				return err
			}
			if tlsOn {
				// Peers would refuse it in every handshake; say so now.
				if err := wire.CheckCertificate(tlsf.cert, tlsf.key, tlsf.ca, time.Now()); err != nil {
					return fmt.Errorf("--tls-cert: %w", err)
				}
			}
			serverTLS, err := tlsf.server()
			if err != nil {
				return err
			}
			clientTLS, err := tlsf.client()
			if err != nil {
				return err
			}
			if name == "" {
				name = hostname() + "-" + listen
			}
			ctx := cmd.Context()
			tele, err := tel.setup(ctx, "migtrace", true)
			if err != nil {
				return err
			}
			defer shutdownTelemetry(tele, log)

			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", listen, err)
			}
			mcfg := tune.config()
			mcfg.Limits = limits
			srv, err := server.New(ctx, server.Config{
				Name: name, Address: ln.Addr().String(), Backend: backend, Boot: boot, Spec: spec,
				ServerTLS: serverTLS, ClientTLS: clientTLS, Migration: mcfg,
				Tracer: tele.Tracer(), Metrics: tele.Instruments(), MetricsHandler: tele.MetricsHandler(),
				Flush: tele.ForceFlush, Logger: log,
			})
			if err != nil {
				ln.Close()
				return err
			}
			st := srv.Status()
			log.Info("serving", "address", ln.Addr().String(), "name", name, "state", st.State,
				"backend", st.Backend, "memory_bytes", spec.MemoryBytes, "tls", tlsOn)
			err = srv.Serve(ctx, ln)
			if errors.Is(err, net.ErrClosed) {
				err = nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "`ADDR` (HOST:PORT) for the HTTP API and migration streams")
	f.StringVar(&name, "name", "", "instance name (default HOSTNAME-ADDR)")
	f.BoolVar(&boot, "boot", false, "boot a fresh VM instead of waiting for one to migrate in")
	f.BoolVar(&insecure, "insecure", false, "allow a non-loopback --listen without TLS")
	vmf.register(f)
	capf.register(f)
	vmf.registerSimClock(f)
	tlsf.register(f)
	tune.register(f)
	tel.register(f)
	return cmd
}
