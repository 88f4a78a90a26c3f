// composecheck loads docker compose files with Docker Compose's own loader, compose-go (the library
// behind `docker compose config`), and prints the resolved project, or the loader's error.
//
// It needs no container engine: the files are parsed, merged in order, interpolated from the env
// files, validated against the Compose Specification's JSON schema and checked for consistency
// (every depends_on, volume and network defined), exactly as `docker compose config` does. Relative
// paths are resolved against the project directory (the folder of the first file).
//
//	go run ./tools/composecheck -f docker-compose.yml -f docker-compose.distribution.yml --env-file .env.example
//
// Output: the resolved project as JSON (as `docker compose config --format json`), exit 0; or
// `error: ...` on stderr, exit 1. testbench/tests/deploy_compose.rs runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var files, envFiles list
	flag.Var(&files, "f", "compose file (repeat to merge, in order; default docker-compose.yml)")
	flag.Var(&envFiles, "env-file", "env file for interpolation (repeatable; default: .env of the project directory, if any)")
	projectDir := flag.String("project-directory", "", "project directory (default: the folder of the first file)")
	osEnv := flag.Bool("os-env", false, "also interpolate from this process's environment, as docker compose does (off: the result depends only on the files)")
	format := flag.String("format", "json", "json or yaml")
	flag.Parse()
	if len(files) == 0 {
		files = list{"docker-compose.yml"}
	}
	if err := run(files, envFiles, *projectDir, *osEnv, *format); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(files, envFiles []string, projectDir string, osEnv bool, format string) error {
	if projectDir == "" {
		abs, err := filepath.Abs(files[0])
		if err != nil {
			return err
		}
		projectDir = filepath.Dir(abs)
	}
	// The options `docker compose config` builds (docker/compose cmd/compose: ToProject and the
	// config command): working directory, environment, env files, then interpolation, resolved paths,
	// normalization and consistency checks, all on; schema validation is always on in the loader.
	opts := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(projectDir)}
	if osEnv {
		opts = append(opts, cli.WithOsEnv)
	}
	opts = append(opts,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithDefaultProfiles(),
		cli.WithDiscardEnvFile,
	)
	options, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	var out []byte
	switch format {
	case "json":
		out, err = project.MarshalJSON()
	case "yaml":
		out, err = project.MarshalYAML()
	default:
		return fmt.Errorf("unknown format %q: json or yaml", format)
	}
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}
