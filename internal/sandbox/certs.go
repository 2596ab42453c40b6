package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the sandbox's certificate authority and the client certificate the
// operator, the tests and the docker CLI use to talk to every node (mutual TLS).
type pki struct {
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey

	caPEM, clientCertPEM, clientKeyPEM []byte
}

const certValidity = 30 * 24 * time.Hour

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newPKI makes a CA (ECDSA P-256) and a client certificate signed by it.
func newPKI(name string) (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name + " sandbox CA", Organization: []string{"swarm-operator sandbox"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p := &pki{caCert: caCert, caKey: caKey, caPEM: certPEM(caDER)}
	p.clientCertPEM, p.clientKeyPEM, err = p.issue("sandbox-client", nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ClientTLS makes a new CA and a client certificate it signed, as PEM: what a
// SwarmCluster's TLS Secret holds (ca.crt, tls.crt, tls.key), for tests that need a
// valid one and no swarm.
func ClientTLS(name string) (ca, cert, key []byte, err error) {
	p, err := newPKI(name)
	if err != nil {
		return nil, nil, nil, err
	}
	return p.caPEM, p.clientCertPEM, p.clientKeyPEM, nil
}

// issue signs a leaf certificate for the given DNS names and IPs.
func (p *pki) issue(cn string, dnsNames []string, ips []net.IP, usage x509.ExtKeyUsage) (certPEMBytes, keyPEMBytes []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"swarm-operator sandbox"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate %s: %w", cn, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM(der), kp, nil
}

// serverCert issues a node's server certificate: SANs are the node's IP, its name,
// 127.0.0.1 and localhost.
func (p *pki) serverCert(nodeName, ip string) (certPEMBytes, keyPEMBytes []byte, err error) {
	return p.issue(nodeName, []string{nodeName, "localhost"},
		[]net.IP{net.ParseIP(ip), net.IPv4(127, 0, 0, 1)}, x509.ExtKeyUsageServerAuth)
}

// writeTLSDir writes ca.pem, cert.pem and key.pem (the layout DOCKER_CERT_PATH expects).
func writeTLSDir(dir string, ca, cert, key []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"ca.pem": ca, "cert.pem": cert, "key.pem": key} {
		mode := os.FileMode(0o644)
		if name == "key.pem" {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			return err
		}
	}
	return nil
}
