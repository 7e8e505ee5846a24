package main

import (
	"github.com/spf13/cobra"
)

// newCompletionCommand is `sluice completion SHELL`: cobra's completion
// scripts, written to the command's own output (cobra's default command
// binds its output when it is made, before a test or caller can set it).
func newCompletionCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Completion prints a script that makes your shell complete sluice's commands,
flags and values (scenario names, message states, file names).

  bash        source <(sluice completion bash)
              (needs the bash-completion package; to load it in every
              session, write it to /etc/bash_completion.d/sluice)
  zsh         sluice completion zsh > "${fpath[1]}/_sluice"
              (needs "autoload -U compinit; compinit" in ~/.zshrc)
  fish        sluice completion fish > ~/.config/fish/completions/sluice.fish
  powershell  sluice completion powershell | Out-String | Invoke-Expression`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	shell := func(name string, gen func(root *cobra.Command, cmd *cobra.Command) error) *cobra.Command {
		return &cobra.Command{
			Use:               name,
			Short:             "Print the completion script for " + name,
			Args:              args(cobra.NoArgs),
			ValidArgsFunction: cobra.NoFileCompletions,
			RunE:              func(cmd *cobra.Command, _ []string) error { return gen(cmd.Root(), cmd) },
		}
	}
	cmd.AddCommand(
		shell("bash", func(root, cmd *cobra.Command) error { return root.GenBashCompletionV2(cmd.OutOrStdout(), true) }),
		shell("zsh", func(root, cmd *cobra.Command) error { return root.GenZshCompletion(cmd.OutOrStdout()) }),
		shell("fish", func(root, cmd *cobra.Command) error { return root.GenFishCompletion(cmd.OutOrStdout(), true) }),
		shell("powershell", func(root, cmd *cobra.Command) error {
			return root.GenPowerShellCompletionWithDesc(cmd.OutOrStdout())
		}),
	)
	return cmd
}
