// Command goverify checks a certificate chain with Go's standard library only
// (crypto/x509 + encoding/pem). It is an independent oracle for Gatehouse's tests.
//
//	goverify -roots root.pem [-intermediates int.pem] [-usage client|server|any]
//	         [-dns NAME|IP] [-at RFC3339] leaf.pem
//
// Exit status 0 and "OK" on stdout when the chain verifies; 1 and the error otherwise.
// Exit status 2 for usage errors.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

func readPEMCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no CERTIFICATE block", path)
	}
	return certs, nil
}

func usageKeys(usage string) ([]x509.ExtKeyUsage, error) {
	switch usage {
	case "client":
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	case "server":
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, nil
	case "any":
		return []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, nil
	}
	return nil, fmt.Errorf("-usage must be client, server or any, not %q", usage)
}

func verify(rootsFile, intermediatesFile, usage, dnsName, at, leafFile string) error {
	keyUsages, err := usageKeys(usage)
	if err != nil {
		return err
	}
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		KeyUsages:     keyUsages,
		DNSName:       dnsName,
	}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return fmt.Errorf("-at: %w", err)
		}
		opts.CurrentTime = t
	}
	roots, err := readPEMCerts(rootsFile)
	if err != nil {
		return err
	}
	for _, c := range roots {
		opts.Roots.AddCert(c)
	}
	if intermediatesFile != "" {
		intermediates, err := readPEMCerts(intermediatesFile)
		if err != nil {
			return err
		}
		for _, c := range intermediates {
			opts.Intermediates.AddCert(c)
		}
	}
	leaves, err := readPEMCerts(leafFile)
	if err != nil {
		return err
	}
	if len(leaves) != 1 {
		return fmt.Errorf("%s: expected exactly one certificate, found %d", leafFile, len(leaves))
	}
	chains, err := leaves[0].Verify(opts)
	if err != nil {
		return err
	}
	if len(chains) == 0 {
		return errors.New("no chain verified")
	}
	return nil
}

func main() {
	rootsFile := flag.String("roots", "", "trusted root certificates (PEM)")
	intermediatesFile := flag.String("intermediates", "", "intermediate certificates (PEM, optional)")
	usage := flag.String("usage", "any", "required extended key usage: client, server or any")
	dnsName := flag.String("dns", "", "name (DNS name or IP literal) the leaf must be valid for")
	at := flag.String("at", "", "verification time (RFC 3339); default now")
	flag.Parse()
	if *rootsFile == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: goverify -roots FILE [-intermediates FILE] [-usage client|server|any] [-dns NAME] [-at RFC3339] LEAF.pem")
		os.Exit(2)
	}
	if err := verify(*rootsFile, *intermediatesFile, *usage, *dnsName, *at, flag.Arg(0)); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("OK")
}
