package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/validation"
)

func newValidateCommand() *cobra.Command {
	var files []string
	var output string
	var strict bool
	cmd := &cobra.Command{
		Use:   "validate -f FILE_OR_DIR... [--strict]",
		Short: "Check Stash manifests: errors fail, references outside the files are warnings",
		Long: `Check Stash manifests as the operator would, without a cluster.

An object that is wrong as given is an error: exit 1. A check the files do
not allow, because an object a reference points to is not among them (the
Repository a BackupConfiguration names, its storage Secret, a Task or
Function in neither the files nor the built-in catalog, an AppBinding, a
target workload, a Namespace a usagePolicy selector needs), is a warning
saying what was not checked: exit 0, so each manifest can be validated
alone. Fields Stash does not define are warnings too, and so is a
parameter (${name}) a Task's Function uses without a default and its step
does not set, which every BackupConfiguration and RestoreSession using the
Task must then set in spec.task.params (one that does not is an error).

A Task must end with the Function update-status, which records the
session's result; an UPPER_CASE ${VARIABLE} with no default that Stash
does not provide and no step param sets is an error, most likely a typo.
--strict makes every warning an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			set, cat, err := loadWithCatalog(files)
			if err != nil {
				return err
			}
			results := validation.All(set, cat)
			if strict {
				validation.Strict(results)
			}
			bad := 0
			for _, r := range results {
				if !r.Valid() {
					bad++
				}
			}
			if output == outputJSON {
				err = writeValidationJSON(stdout, results, bad == 0)
			} else {
				writeValidationText(stdout, results)
			}
			if err != nil {
				return err
			}
			if bad > 0 {
				if strict {
					return fmt.Errorf("%d of %d objects are invalid (--strict: warnings are errors)", bad, len(results))
				}
				return fmt.Errorf("%d of %d objects are invalid", bad, len(results))
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "files or directories of manifests")
	cmd.Flags().StringVarP(&output, "output", "o", outputText, "output format: text or json")
	cmd.Flags().BoolVar(&strict, "strict", false, "treat warnings (references to objects not in the files, unknown fields, Task parameters without a default) as errors")
	return cmd
}

// writeValidationText prints each object's verdict, then its findings one
// a line ("error: Kind namespace/name: field: message").
func writeValidationText(w io.Writer, results []validation.Result) {
	for _, r := range results {
		errs, warns := r.Count(validation.LevelError), r.Count(validation.LevelWarning)
		switch {
		case errs > 0:
			fmt.Fprintf(w, "%s %s (%s): invalid, %s%s\n", r.Kind, r.Name, r.Source, plural(errs, "error"), andWarnings(warns))
		case warns > 0:
			fmt.Fprintf(w, "%s %s: valid%s\n", r.Kind, r.Name, andWarnings(warns))
		default:
			fmt.Fprintf(w, "%s %s: valid\n", r.Kind, r.Name)
		}
		for _, f := range r.Findings {
			fmt.Fprintln(w, f)
		}
	}
	if len(results) == 0 {
		fmt.Fprintln(w, "no Stash objects found")
	}
}

func andWarnings(n int) string {
	if n == 0 {
		return ""
	}
	return ", " + plural(n, "warning")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// writeValidationJSON prints the verdict per object and every finding as
// one list.
func writeValidationJSON(w io.Writer, results []validation.Result, valid bool) error {
	type object struct {
		Kind   string `json:"kind"`
		Name   string `json:"name"`
		Source string `json:"source,omitempty"`
		Valid  bool   `json:"valid"`
	}
	objects := []object{}
	findings := []validation.Finding{}
	for _, r := range results {
		objects = append(objects, object{Kind: r.Kind, Name: r.Name, Source: r.Source, Valid: r.Valid()})
		findings = append(findings, r.Findings...)
	}
	return writeJSON(w, map[string]any{"valid": valid, "objects": objects, "findings": findings})
}
