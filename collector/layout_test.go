package collector

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The packages under collector/ and what each may import of this module: the data flows
// one way, certview -> poll -> snapshot -> store -> exposition, with telemetry beside
// them and config and this package (the wiring) on top. A package that reached back up
// the flow would fail here.
var allowedImports = map[string][]string{
	"collector/snapshot":              {"certview"},
	"collector/snapshot/snapshottest": {"certview", "certview/certviewtest", "collector/snapshot"},
	"collector/regularfile":           {},
	"collector/store":                 {"collector/regularfile", "collector/snapshot"},
	"collector/telemetry":             {"certview", "collector/snapshot"},
	"collector/exposition":            {"collector/snapshot", "collector/telemetry"},
	"collector/poll":                  {"certview", "collector/snapshot", "collector/store", "collector/telemetry"},
	"collector/web":                   {},
	"collector/config":                {"certview", "collector/exposition", "collector/poll", "collector/regularfile", "collector/snapshot"},
	"collector": {"certview", "collector/config", "collector/exposition", "collector/poll", "collector/snapshot",
		"collector/telemetry"},
}

func TestImportsFollowTheFlow(t *testing.T) {
	const module = "github.com/certview-exporter/certview_exporter/"
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "testdata") {
			return err
		}
		pkg := filepath.ToSlash(filepath.Join("collector", filepath.Dir(path)))
		allowed, ok := allowedImports[pkg]
		if !ok {
			t.Errorf("%s: package %s is not in the layout; add it to allowedImports and the README", path, pkg)
			return nil
		}
		seen[pkg] = true
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if own, ok := strings.CutPrefix(p, module); ok && !slices.Contains(allowed, own) {
				t.Errorf("%s imports %s: %s may import only %v", path, own, pkg, allowed)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowedImports {
		if !seen[pkg] {
			t.Errorf("package %s is in the layout but has no files", pkg)
		}
	}
}
