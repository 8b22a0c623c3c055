package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// addConfigFlag adds --config to cmd and makes every flag of cmd readable
// from SYNCER_<FLAG> and from the YAML file. Precedence: command line, then
// environment, then file, then the flag's default. ignore names keys of a
// sibling command that the file may hold and this command ignores (push
// reads watch's config file, which has "interval").
func addConfigFlag(cmd *cobra.Command, ignore ...string) {
	cmd.Flags().String("config", "", "read flags from the YAML `FILE` (keys are flag names, e.g. max-conns: 100)")
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if err := applyEnvAndConfig(c.Flags(), ignore...); err != nil {
			return withCode(exitUsage, err)
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return "SYNCER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyEnvAndConfig sets every flag not given on the command line from the
// environment or, failing that, from the --config file. Unknown keys in the
// file are an error, so a typo never silently falls back to a default.
func applyEnvAndConfig(fs *pflag.FlagSet, ignore ...string) error {
	if f := fs.Lookup("config"); f != nil && !f.Changed {
		if v, ok := os.LookupEnv(envName("config")); ok {
			if err := fs.Set("config", v); err != nil {
				return fmt.Errorf("%s: %w", envName("config"), err)
			}
		}
	}
	fileValues := map[string]any{}
	if path, _ := fs.GetString("config"); path != "" {
		var err error
		if fileValues, err = readConfigFile(path, fs, ignore); err != nil {
			return err
		}
	}
	var setErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if setErr != nil || f.Changed || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := setFlagValue(fs, f, splitEnvList(f, v)); err != nil {
				setErr = fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, err)
			}
			return
		}
		if v, ok := fileValues[f.Name]; ok {
			vals, err := yamlScalars(v)
			if err == nil {
				err = setFlagValue(fs, f, vals)
			}
			if err != nil {
				setErr = fmt.Errorf("config key %q: %w", f.Name, err)
			}
		}
	})
	return setErr
}

// readConfigFile parses the YAML file and rejects keys that name no flag
// and are not in ignore; ignored keys are dropped.
func readConfigFile(path string, fs *pflag.FlagSet, ignore []string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	values := map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&values); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("config %s: malformed YAML: %v", path, err)
	}
	var unknown []string
	for k := range values {
		if slices.Contains(ignore, k) && fs.Lookup(k) == nil {
			delete(values, k)
			continue
		}
		if f := fs.Lookup(k); f == nil || k == "config" || k == "help" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config %s: unknown key %q (keys are the command's flag names)", path, unknown[0])
	}
	return values, nil
}

// isList reports whether the flag takes repeated values.
func isList(f *pflag.Flag) bool {
	t := f.Value.Type()
	return strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array")
}

// splitEnvList splits a list flag's environment value on commas; a scalar
// flag keeps the whole value.
func splitEnvList(f *pflag.Flag, v string) []string {
	if !isList(f) {
		return []string{v}
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// yamlScalars turns a YAML value into flag strings: a scalar or a list of scalars.
func yamlScalars(v any) ([]string, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case []any:
		var out []string
		for _, e := range t {
			s, err := yamlScalars(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	case map[string]any:
		return nil, fmt.Errorf("want a value or a list, got a mapping")
	default:
		return []string{fmt.Sprint(t)}, nil
	}
}

func setFlagValue(fs *pflag.FlagSet, f *pflag.Flag, vals []string) error {
	if len(vals) > 1 && !isList(f) {
		return fmt.Errorf("takes one value, got a list")
	}
	for _, v := range vals {
		if err := fs.Set(f.Name, v); err != nil {
			return err
		}
	}
	return nil
}
