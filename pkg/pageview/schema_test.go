package pageview

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
)

// The JSON keys, proto/pixelstream/v1/pageview.proto and docs/schema.md
// must describe the same fields.
func TestSchemaFilesAgree(t *testing.T) {
	root, _ := filepath.Abs("../..")
	c := protocompile.Compiler{Resolver: &protocompile.SourceResolver{ImportPaths: []string{filepath.Join(root, "proto")}}}
	files, err := c.Compile(context.Background(), "pixelstream/v1/pageview.proto")
	if err != nil {
		t.Fatal(err)
	}
	md := files[0].Messages().ByName("Pageview")
	var m map[string]any
	if err := json.Unmarshal(sample().AppendJSON(nil), &m); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs/schema.md"))
	if err != nil {
		t.Fatal(err)
	}
	if md.Fields().Len() != len(m) {
		t.Errorf("proto has %d fields, JSON has %d keys", md.Fields().Len(), len(m))
	}
	for i := range md.Fields().Len() {
		name := md.Fields().Get(i).JSONName()
		if _, ok := m[name]; !ok {
			t.Errorf("proto field %s not in JSON output", name)
		}
	}
	for key := range m {
		if !strings.Contains(string(doc), "| `"+key+"` |") {
			t.Errorf("docs/schema.md does not document %s", key)
		}
	}
}
