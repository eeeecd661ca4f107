package connector

import "github.com/latchkey/latchkey/internal/secretbox"

// OpenLinkSecret opens the sealed secret of link l, for tests that unlock
// through the controller directly.
func OpenLinkSecret(box *secretbox.Box, l VisitLink) (string, error) {
	b, err := box.Open(l.SecretEnc, linkAD(l.VisitID, l.GroupID))
	return string(b), err
}
