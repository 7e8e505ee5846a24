// Package metrics exposes sluice's statistics to Prometheus. It is the only
// package of sluice that imports client_golang.
//
// A Collector is a prometheus.Collector over a registry.Registry and,
// optionally, a health.Monitor and dead-letter stores. It keeps no metric
// state of its own: at each scrape it reads a registry Snapshot (the
// policies' atomic counters) and the stores' Stats, and turns them into
// constant metrics, so calls through the policies pay nothing for being
// measured.
//
// The names are the SysManage resilience document's under the sluice_ namespace, with the
// same labels: name for breakers, limiters, timeouts, fallbacks and caches,
// operation for retry policies, resource for bulkheads, queue for
// dead-letter queues. Metrics lists every family.
//
// Handler serves a Collector from a prometheus.Registry of its own, never
// the global default one, with the Go runtime and process collectors when
// Config.Runtime is set (the sidecar sets it). A Proxy holds the sidecar's
// own request metrics (sluice_proxy_*), live counters resolved once per
// route so that recording a request allocates nothing. The repository's
// deploy/prometheus/alerts.yml and deploy/grafana/sluice.json use only the
// names this package exports, which a test checks.
package metrics
