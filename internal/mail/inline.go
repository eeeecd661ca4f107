package mail

import (
	"encoding/base64"
	"strings"
)

// InlinedHTML is m's HTML body with every cid: reference to one of its
// inline attachments replaced by a data: URI of that attachment, so the
// body shows its images on its own (as the outbox page does).
func (m Message) InlinedHTML() string {
	if m.HTML == "" {
		return ""
	}
	var pairs []string
	for _, a := range m.Attachments {
		if !a.Inline || a.ContentID == "" {
			continue
		}
		ct := a.ContentType
		if ct == "" || strings.ContainsAny(ct, `"'<> `) {
			ct = "application/octet-stream"
		}
		pairs = append(pairs, "cid:"+a.ContentID, "data:"+ct+";base64,"+base64.StdEncoding.EncodeToString(a.Data))
	}
	if len(pairs) == 0 {
		return m.HTML
	}
	return strings.NewReplacer(pairs...).Replace(m.HTML)
}
