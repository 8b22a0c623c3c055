package main

import (
	"github.com/spf13/cobra"
)

// serviceOptions are the flags of `syncer service`.
type serviceOptions struct {
	// Name is the service's name in the service control manager and the
	// event log's source.
	Name string
	// Config is the YAML file of watch's flags the service runs with.
	Config string
	// LogFile receives watch's log lines (also sent to the event log).
	LogFile string
}

// defaultServiceName is the service's name unless --name says otherwise.
const defaultServiceName = "syncer"

func newServiceCommand() *cobra.Command {
	var opts serviceOptions
	cmd := &cobra.Command{
		Use:   "service install|uninstall|start|stop|status",
		Short: "Run syncer watch as a Windows service",
		Long: `Service installs, controls and removes a Windows service that runs
"syncer watch --config FILE": it starts at boot, restarts after a failure,
and stops on the service stop request (or at shutdown) as watch stops on
SIGTERM: the current transfer is cut, the manifest keeps what the server
confirmed, the next start resumes. Its log lines go to the Windows event log
(source --name) and to --log-file.

Run it from an elevated prompt. The config file holds watch's flags (see
scripts/agent.example.yaml); give the password with password-file, since a
service has no environment of yours. This command is Windows-only: on Linux
run watch from systemd (scripts/systemd/syncer-watch.service).`,
		Example: `  syncer service install --config C:\ProgramData\syncer\agent.yaml
  syncer service start
  syncer service status
  syncer service stop
  syncer service uninstall`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := serviceAvailable(); err != nil {
				return err
			}
			return usageErrorf("syncer service: give one of install, uninstall, start, stop, status")
		},
	}
	cmd.PersistentFlags().StringVar(&opts.Name, "name", defaultServiceName, "service `NAME` (and event log source)")
	sub := func(use, short string, run func(serviceOptions) error) *cobra.Command {
		c := &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return run(opts) },
		}
		cmd.AddCommand(c)
		return c
	}
	install := sub("install --config FILE", "Install the service (starts at boot; run start to start it now)", serviceInstall)
	install.Flags().StringVar(&opts.Config, "config", "", "watch's YAML config `FILE` (required)")
	install.Flags().StringVar(&opts.LogFile, "log-file", "", "append the log to `FILE` (default: <state>\\<name>.log)")
	sub("uninstall", "Stop and remove the service and its event log source", serviceUninstall)
	sub("start", "Start the service", serviceStart)
	sub("stop", "Stop the service the way SIGTERM stops watch, and wait for it", serviceStop)
	sub("status", "Print the service's state", serviceStatus)
	// run is what the service control manager starts; not for people.
	run := sub("run", "Run as the service (started by the service control manager)", serviceRun)
	run.Hidden = true
	run.Flags().StringVar(&opts.Config, "config", "", "watch's YAML config `FILE`")
	run.Flags().StringVar(&opts.LogFile, "log-file", "", "append the log to `FILE`")
	return cmd
}
