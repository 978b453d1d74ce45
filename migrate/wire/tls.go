package wire

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// ServerTLSConfig returns a TLS 1.3-only server configuration that presents
// certFile/keyFile and requires every client to present a certificate
// signed by a CA in caFile. Errors name the file that failed.
func ServerTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, pool, err := loadTLSFiles(certFile, keyFile, caFile)
	if err != nil {
		return nil, fmt.Errorf("server TLS: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// ClientTLSConfig returns a TLS 1.3-only client configuration that presents
// certFile/keyFile and accepts only servers whose certificate is signed by
// a CA in caFile. It speaks HTTP/1.1 only, which the upgrade needs. Errors
// name the file that failed.
func ClientTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, pool, err := loadTLSFiles(certFile, keyFile, caFile)
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

// CheckCertificate verifies certFile, as peers will, against the CA in
// caFile at now. A server whose own certificate has expired, is not yet
// valid or is not signed by that CA would start, then fail every
// migration in the TLS handshake; this says why before it starts. Errors
// name the file.
func CheckCertificate(certFile, keyFile, caFile string, now time.Time) error {
	cert, pool, err := loadTLSFiles(certFile, keyFile, caFile)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("certificate %s: %w", certFile, err)
	}
	const day = "2006-01-02 15:04:05 MST"
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("certificate %s expired at %s", certFile, leaf.NotAfter.UTC().Format(day))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("certificate %s is not valid until %s", certFile, leaf.NotBefore.UTC().Format(day))
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	// Any usage: which one a peer checks depends on the direction it dials.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("certificate %s is not signed by the CA in %s: %w", certFile, caFile, err)
	}
	return nil
}

func loadTLSFiles(certFile, keyFile, caFile string) (tls.Certificate, *x509.CertPool, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("reading certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("reading key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("loading key pair from certificate %s and key %s: %w", certFile, keyFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	return cert, pool, nil
}
