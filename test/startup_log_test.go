package test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbroker/imbroker/internal/app"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStartupLogShowsListenerURLs: each MQTT listener's start-up line
// carries its bound address and the URL clients dial, the WebSocket one
// with its configured path.
func TestStartupLogShowsListenerURLs(t *testing.T) {
	cfg := TestConfig(t)
	cfg.MQTT.WSPath = "/im/mqtt"
	cfg.MQTT.TLS.Address = "127.0.0.1:0"
	cfg.MQTT.TLS.CertFile, cfg.MQTT.TLS.KeyFile = selfSignedCert(t)
	var buf lockedBuffer
	a, err := app.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()

	urls := map[string]string{}
	for _, line := range bytes.Split([]byte(buf.String()), []byte("\n")) { // Start returns after logging
		var m struct{ Msg, Listener, Address, URL string }
		if json.Unmarshal(line, &m) == nil && m.Msg == "mqtt listener started" {
			urls[m.Listener] = m.URL
			if m.Address == "" {
				t.Errorf("listener %s logged without address: %s", m.Listener, line)
			}
		}
	}
	want := map[string]string{"tcp": "tcp://" + a.MQTTAddr(), "ws": "ws://" + a.WSAddr() + "/im/mqtt"}
	if len(urls) != 3 || !strings.HasPrefix(urls["tls"], "ssl://127.0.0.1:") || strings.HasSuffix(urls["tls"], ":0") {
		t.Errorf("want tcp, ws and tls listeners, tls as ssl://127.0.0.1:port; got %v", urls)
	}
	for id, u := range want {
		if urls[id] != u {
			t.Errorf("listener %s logged url %q, want %q (all: %v)", id, urls[id], u, urls)
		}
	}
}

// selfSignedCert writes a throwaway certificate and key for 127.0.0.1 and
// returns their paths.
func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
