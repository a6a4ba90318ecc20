package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfig_Cluster(t *testing.T) {
	t.Setenv(EnvSecretKey, "")
	d := Default().Cluster
	if d.Enabled || d.Replicas != 3 || d.ApplyTimeout != 5*time.Second || d.OwnerWait != 15*time.Second || d.MaxEffectBytes != 8<<20 {
		t.Fatalf("defaults %+v", d)
	}
	cfg, err := Parse([]byte(`cluster:
  enabled: true
  name: n-1
  listen: 127.0.0.1:6250
  client_listen: 127.0.0.1:0
  routes: [nats-route://127.0.0.1:6250, nats-route://127.0.0.1:6251, nats-route://127.0.0.1:6252]
  owner_wait: 3s
`))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Cluster; !c.Enabled || c.Name != "n-1" || len(c.Routes) != 3 || c.OwnerWait != 3*time.Second {
		t.Fatalf("parsed %+v", c)
	}
	t.Setenv(EnvClusterRoutePassword, "from-the-environment-0123")
	if cfg, err := Parse([]byte("cluster:\n  route_password: in-the-file-0123456789\n")); err != nil || cfg.Cluster.RoutePassword != "from-the-environment-0123" {
		t.Fatalf("route password from the environment: %q %v", cfg.Cluster.RoutePassword, err)
	}
	// Off: the node keys are not needed.
	if _, err := Parse([]byte("cluster:\n  enabled: false\n")); err != nil {
		t.Fatal(err)
	}
}

func TestConfig_ClusterInvalid(t *testing.T) {
	t.Setenv(EnvSecretKey, "")
	cases := []struct{ yaml, want string }{
		{"cluster:\n  enabled: true\n", "cluster.name"},
		{"cluster:\n  enabled: true\n", "cluster.listen: required"},
		{"cluster:\n  enabled: true\n", "cluster.routes: required"},
		{"cluster:\n  enabled: true\n  name: a.b\n", "cluster.name"},
		{"cluster:\n  enabled: true\n  client_listen: 0.0.0.0:4222\n", "cluster.client_listen"},
		{"cluster:\n  enabled: true\n  routes: [http://x:1, nats-route://h]\n", "cluster.routes[0]"},
		{"cluster:\n  enabled: true\n  routes: [http://x:1, nats-route://h]\n", "cluster.routes[1]"},
		{"cluster:\n  enabled: true\n  routes: [nats-route://a:1]\n", "cluster.routes: required"},
		{"cluster:\n  enabled: true\n  routes: [nats-route://a:1, nats-route://b:1]\n", "3 replicas need at least as many nodes"},
		{"cluster:\n  replicas: 6\n", "cluster.replicas: must be 1 to 5"},
		{"cluster:\n  apply_timeout: 0s\n", "cluster.apply_timeout"},
		{"cluster:\n  forward_timeout: -1s\n", "cluster.forward_timeout"},
		{"cluster:\n  owner_wait: 0s\n", "cluster.owner_wait"},
		{"cluster:\n  log_max_age: 0s\n", "cluster.log_max_age"},
		{"cluster:\n  max_effect_bytes: 1000\n", "cluster.max_effect_bytes"},
		{"cluster:\n  log_max_bytes: 1000\n", "cluster.log_max_bytes"},
		{"cluster:\n  forward_inflight: 0\n", "cluster.forward_inflight"},
		{"cluster:\n  presence_interval: 0s\n", "cluster.presence_interval"},
		{"cluster:\n  presence_interval: 1s\n  presence_timeout: 2s\n", "cluster.presence_timeout: must be at least 3"},
		{"cluster:\n  enabled: true\n  route_password: short\n", "cluster.route_password"},
		{"http:\n  address: 127.0.0.1:6250\ncluster:\n  enabled: true\n  listen: 127.0.0.1:6250\n", "cluster.listen: \"127.0.0.1:6250\" uses the same port as http.address"},
		{"cluster:\n  enabld: true\n", `cluster.enabld: unknown key (did you mean "enabled"?)`},
		{"storage:\n  recover_damaged: true\ncluster:\n  enabled: true\n", "storage.recover_damaged: not in cluster mode"},
		{"storage:\n  in_memory: true\ncluster:\n  enabled: true\n", "storage.in_memory: not in cluster mode"},
		{"cluster:\n  enabled: true\n  forward_timeout: 4s\n", "cluster.forward_timeout: 4s must exceed half of storage.commit_timeout (10s)"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: want an error naming %q, got %v", c.yaml, c.want, err)
		}
	}
}

// -new-epochs (Storage.NewEpochs, not a YAML key) is refused in cluster mode.
func TestConfig_ClusterRefusesNewEpochs(t *testing.T) {
	cfg := Default()
	cfg.Cluster.Enabled, cfg.Cluster.Name, cfg.Cluster.Listen = true, "n1", "127.0.0.1:6251"
	cfg.Cluster.Routes = []string{"nats-route://127.0.0.1:6251", "nats-route://127.0.0.1:6252", "nats-route://127.0.0.1:6253"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Storage.NewEpochs = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "-new-epochs is refused in cluster mode") {
		t.Fatalf("got %v", err)
	}
	cfg.Cluster.Enabled = false
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// examples/cluster's three configs load and make one cluster: distinct
// names, listeners and data dirs, one route list, one key.
func TestConfig_ClusterExamples(t *testing.T) {
	t.Setenv(EnvSecretKey, "")
	t.Setenv(EnvClusterRoutePassword, "")
	seen := map[string]string{}
	var first Config
	for i := 1; i <= 3; i++ {
		path := fmt.Sprintf("../examples/cluster/node%d.yaml", i)
		cfg, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Cluster
		if !c.Enabled || len(c.Routes) != 3 || c.RoutePassword == "" || cfg.App.SecretKey == "" {
			t.Fatalf("%s: %+v", path, c)
		}
		for _, v := range []string{c.Name, c.Listen, cfg.MQTT.TCP, cfg.MQTT.WS, cfg.HTTP.Address, cfg.Storage.Dir} {
			if other, dup := seen[v]; dup {
				t.Errorf("%s and %s share %q", path, other, v)
			}
			seen[v] = path
		}
		if i == 1 {
			first = cfg
		} else if !slices.Equal(c.Routes, first.Cluster.Routes) || c.RoutePassword != first.Cluster.RoutePassword || cfg.App.SecretKey != first.App.SecretKey {
			t.Errorf("%s: routes, route password or key differ from node1's", path)
		}
	}
}
