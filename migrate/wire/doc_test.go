package wire_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/migrate/wire"
)

// docs/protocol.md documents every message: a heading "### Name (code)" and
// a row in the type table.
func TestProtocolDocCoversEveryType(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatalf("reading the protocol document: %v", err)
	}
	text := string(doc)
	for ty := wire.Type(1); ty.Valid(); ty++ {
		heading := fmt.Sprintf("### %s (%d)", ty, uint8(ty))
		row := fmt.Sprintf("| %d | `%s` |", uint8(ty), ty)
		if !strings.Contains(text, heading) || !strings.Contains(text, row) {
			t.Errorf("docs/protocol.md lacks %q or the table row %q", heading, row)
		}
	}
}
