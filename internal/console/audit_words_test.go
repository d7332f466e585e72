package console_test

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"medguard/internal/cli"
	"medguard/internal/detect"
	"medguard/internal/policy"
)

// TestEveryAuditActionHasWords checks that the audit pages can say every
// action the services write in words, in both languages: the actions of
// the API's routes (web.Routes), every AuditAction, gate event Action and
// exchange action written in medguard's source, every permission (the
// action of an operation without its own), the alert states, and every
// detection rule (alerts name them).
func TestEveryAuditActionHasWords(t *testing.T) {
	cat := map[string]map[string]string{}
	for _, lang := range []string{"zh-CN", "en"} {
		cat[lang] = map[string]string{}
		files, _ := filepath.Glob(filepath.Join("locale", lang, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]string
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for k, v := range m {
				cat[lang][k] = v
			}
		}
	}
	want := map[string]string{} // action → where it comes from
	app, err := cli.Open(context.Background(), cli.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	for _, r := range app.Web.Routes() {
		want[r.Action] = "route " + r.Method + " " + r.Pattern
	}
	for a, where := range sourceActions(t) {
		want[a] = where
	}
	for _, p := range policy.AllPermissions {
		want[string(p)] = "permission"
	}
	for _, s := range []string{detect.StatusAcknowledged, detect.StatusFalsePositive, detect.StatusEscalated} {
		want["alert."+s] = "alert state"
	}
	t.Logf("%d actions: %v", len(want), keys(want))
	if len(want) < 100 {
		t.Fatalf("only %d actions found: the scan is broken", len(want))
	}
	for a, where := range want {
		for lang, m := range cat {
			if strings.TrimSpace(m["audit.action."+a]) == "" {
				t.Errorf("%s: no words for the action %q (%s)", lang, a, where)
			}
		}
	}
	rules := []string{detect.DeadlineOverdueRule}
	for _, r := range detect.DefaultRules() {
		rules = append(rules, r.Name)
	}
	for _, r := range rules {
		for lang, m := range cat {
			if m["detect.rule."+r] == "" {
				t.Errorf("%s: no name for the detection rule %q", lang, r)
			}
			if m["alerts.explain."+r] == "" && r != "other" {
				t.Errorf("%s: no explanation for the detection rule %q", lang, r)
			}
		}
	}
}

// sourceActions finds the audit actions written as string literals in
// medguard's non-test source: AuditAction and Action fields of composite
// literals (gate passages, gate events, routes) and assignments to an
// exchange's Action.
func sourceActions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	files, err := filepath.Glob(filepath.Join("..", "*", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	add := func(e ast.Expr, where string) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil || !strings.Contains(s, ".") || strings.HasSuffix(s, ".") || strings.ContainsAny(s, " /") {
			return
		}
		out[s] = where
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.Contains(f, string(filepath.Separator)+"testkit"+string(filepath.Separator)) {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && (id.Name == "AuditAction" || id.Name == "Action") {
					add(n.Value, f)
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Action" && i < len(n.Rhs) {
						add(n.Rhs[i], f)
					}
				}
			}
			return true
		})
	}
	if !slices.Contains(keys(out), "patient.search_match") {
		t.Fatalf("the scan missed patient.search_match: %v", keys(out))
	}
	return out
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
