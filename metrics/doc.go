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
// The names are the original design's under the sluice_ namespace, with the
// same labels: name for breakers, limiters, timeouts, fallbacks and caches,
// operation for retry policies, resource for bulkheads, queue for
// dead-letter queues. Metrics lists every family.
//
// Handler serves a Collector from a prometheus.Registry of its own, never
// the global default one; to add Go runtime or process metrics, register
// the Collector in your own prometheus.Registry next to them. The repository's
// deploy/prometheus/alerts.yml and deploy/grafana/sluice.json use only the
// names this package exports, which a test checks.
package metrics
