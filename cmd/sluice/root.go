package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is the release this binary was built from, set at link time:
//
//	go build -ldflags "-X main.version=v1.2.0" ./cmd/sluice
//
// The module version and VCS revision Go records in the binary are shown
// beside it, so a "dev" build can still be traced to its commit.
var version = "dev"

// NewRootCommand builds the whole sluice command tree. Every subcommand is
// added here, explicitly, from its own constructor; nothing registers
// itself. Output goes to the command's OutOrStdout and ErrOrStderr, so a
// test can run any command in process and read what it printed.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "A resilience sidecar: retries, breakers, bulkheads and a dead-letter queue in front of any HTTP service",
		Long: `sluice puts a resilience layer in front of any HTTP service, in any language:
retries with backoff and a retry budget, circuit breakers, bulkheads, rate
limits, timeouts, a stale-answer cache and a durable dead-letter queue whose
requests are replayed once the upstream is healthy again. One YAML file
configures it (see docs/config.md); an admin API serves metrics, health and
the dead-letter queue.

Start with the quick tour, which needs nothing but this binary:

  sluice demo --duration 20s`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("sluice {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		newServeCommand(&serveOptions{}),
		newValidateCommand(&validateOptions{}),
		newDLQCommand(),
		newHealthCommand(&healthOptions{}),
		newSimCommand(&simOptions{}),
		newDemoCommand(&demoOptions{}),
		newCompletionCommand(),
	)
	return root
}

// run executes the command tree with args and returns the process's exit
// status: 0 on success, 2 for a usage mistake, 1 for any other failure (or
// the status an exitError carries).
func run(args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(context.Background())
	return exitStatus(cmd, err, stderr)
}

// exitStatus reports err on stderr unless the command already did, and
// returns the exit status for it.
func exitStatus(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "sluice: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "sluice: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		path := "sluice"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
		return 2
	}
	return 1
}

// exitError ends the process with code. A nil err means the command has
// reported the problem itself (validate printing every configuration
// error, health printing a critical report), so nothing more is printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError is a mistake in how a command was called: a bad flag or the
// wrong number of arguments. It exits with status 2, as Go's flag package
// does.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// args wraps a cobra argument check so that its failure is a usageError.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// versionString is the --version text: the linked version, then the module
// version, VCS revision and Go version recorded in the binary.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	var extra []string
	if info.Main.Path != "" {
		extra = append(extra, "module "+info.Main.Path+"@"+info.Main.Version)
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified == "true" {
			rev += "+dirty"
		}
		extra = append(extra, "commit "+rev)
	}
	if info.GoVersion != "" {
		extra = append(extra, info.GoVersion)
	}
	if len(extra) == 0 {
		return version
	}
	return version + " (" + strings.Join(extra, ", ") + ")"
}
