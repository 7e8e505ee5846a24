package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sluice-go/sluice/config"
)

// validateOptions are the inputs of `sluice validate`.
type validateOptions struct {
	// path is the configuration file to check.
	path string
	// lookupEnv resolves ${NAME} references; nil means the process
	// environment (config.Loader's default).
	lookupEnv func(string) (string, bool)
}

func newValidateCommand(o *validateOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration file and print every problem in it",
		Long: `Validate reads a configuration file the way 'sluice serve' would: strict
YAML, every key known, every value in range, every route naming a policy that
exists, ${ENV} references resolved. It then checks every route's policy
settings against the policies' own rules, which catches settings a policy
refuses, as 'sluice serve' would at start.

Each problem is printed on a line of its own, as FILE:LINE:COLUMN: FIELD:
MESSAGE, so editors can jump to it; the exit status is then 1. A valid file
prints "FILE: ok" and exits 0.`,
		Example: "  sluice validate sluice.yaml",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.path = a[0]
			return o.run(cmd.OutOrStdout())
		},
	}
}

func (o *validateOptions) run(out io.Writer) error {
	cfg, err := config.Loader{LookupEnv: o.lookupEnv}.Load(o.path)
	if err == nil {
		err = cfg.Validate()
	}
	var errs config.Errors
	switch {
	case err == nil:
		fmt.Fprintf(out, "%s: ok\n", o.path)
		return nil
	case errors.As(err, &errs):
		for _, e := range errs {
			fmt.Fprintln(out, e.Error())
		}
	default:
		fmt.Fprintf(out, "%s: %v\n", o.path, err)
	}
	return &exitError{code: 1}
}
