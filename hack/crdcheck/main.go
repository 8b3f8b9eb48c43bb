// Command crdcheck validates CRD manifests exactly as kube-apiserver does
// when they are created (apiextensions' ValidateCustomResourceDefinition:
// structural schema, defaults, and CEL rules compiled with their cost
// limits), without running an apiserver. Used by hack/generate.sh --verify.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"sigs.k8s.io/yaml"
)

func main() {
	objects := flag.String("objects", "", "a YAML file of test objects to evaluate the CRDs' CEL rules on; each document's metadata.annotations[\"crdcheck/expect\"] is \"valid\" or a substring of the expected error")
	flag.Parse()
	bad := 0
	crds := map[string]*apiextensions.CustomResourceDefinition{}
	for _, path := range flag.Args() {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		var v1 apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &v1); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			bad++
			continue
		}
		apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&v1)
		var crd apiextensions.CustomResourceDefinition
		if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1, &crd, nil); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			bad++
			continue
		}
		if errs := validation.ValidateCustomResourceDefinition(context.Background(), &crd); len(errs) > 0 {
			bad++
			fmt.Fprintf(os.Stderr, "%s: %d errors:\n", path, len(errs))
			for _, e := range errs {
				fmt.Fprintf(os.Stderr, "  %v\n", e)
			}
			continue
		}
		fmt.Printf("%s: valid\n", path)
		crds[crd.Spec.Group+"/"+crd.Spec.Names.Kind] = &crd
	}
	if *objects != "" {
		bad += evaluate(*objects, crds)
	}
	if bad > 0 {
		os.Exit(1)
	}
}

// evaluate runs the CEL rules of the matching CRD on each test object and
// compares the outcome with the object's crdcheck/expect annotation.
func evaluate(path string, crds map[string]*apiextensions.CustomResourceDefinition) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bad := 0
	for i, doc := range strings.Split(string(raw), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj == nil {
			continue
		}
		apiVersion, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		group, version, _ := strings.Cut(apiVersion, "/")
		meta, _ := obj["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		expect, _ := ann["crdcheck/expect"].(string)
		crd, ok := crds[group+"/"+kind]
		if !ok {
			fmt.Fprintf(os.Stderr, "object %d: no CRD for %s %s\n", i, apiVersion, kind)
			bad++
			continue
		}
		var props *apiextensions.JSONSchemaProps
		for _, v := range crd.Spec.Versions {
			if v.Name == version && v.Schema != nil {
				props = v.Schema.OpenAPIV3Schema
			}
		}
		if props == nil && crd.Spec.Validation != nil {
			props = crd.Spec.Validation.OpenAPIV3Schema
		}
		ss, err := structuralschema.NewStructural(props)
		if err != nil {
			fmt.Fprintf(os.Stderr, "object %d: %v\n", i, err)
			bad++
			continue
		}
		errs, _ := cel.NewValidator(ss, true, celconfig.PerCallLimit).Validate(context.Background(), field.NewPath(""), ss, obj, nil, celconfig.RuntimeCELCostBudget)
		got := errs.ToAggregate()
		switch {
		case expect == "valid" && got != nil:
			fmt.Fprintf(os.Stderr, "object %d (%s): want valid, got %v\n", i, kind, got)
			bad++
		case expect != "valid" && (got == nil || !strings.Contains(got.Error(), expect)):
			fmt.Fprintf(os.Stderr, "object %d (%s): want an error containing %q, got %v\n", i, kind, expect, got)
			bad++
		default:
			fmt.Printf("object %d (%s): %s as expected\n", i, kind, expect)
		}
	}
	return bad
}
