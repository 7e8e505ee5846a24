// Command sluice runs sluice as a sidecar: a reverse proxy that puts
// retries, circuit breakers, bulkheads, rate limits and a dead-letter queue
// in front of any HTTP service, configured by one YAML file. Run
// `sluice --help` for the commands and `sluice demo` for a guided tour.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
