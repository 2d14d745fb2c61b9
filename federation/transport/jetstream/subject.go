package jetstream

import (
	"strconv"
	"strings"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/transport"
)

// PeerName is the event_deliveries peer of the publishes into stream
// (transport.JetStreamPeerName).
func PeerName(stream string) string { return transport.JetStreamPeerName(stream) }

// Token escapes s into one NATS subject token: letters, digits, '-' and '_' stay, every
// other byte (the '.' of a node name, '*', '>', space, '%', ...) becomes %XX.
func Token(s string) string {
	const hex = "0123456789ABCDEF"
	clean := s != ""
	for i := 0; i < len(s) && clean; i++ {
		clean = plain(s[i])
	}
	if clean {
		return s
	}
	if s == "" {
		return "%"
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Subject is the subject of an event of group from source with type typ:
// prefix.Token(group).<type tokens>.Token(source). The type keeps its dots as token
// separators (each part escaped), so `prefix.group.routerd.client.>` selects a type
// family; the source node is always the last token.
func Subject(prefix, group, typ, source string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(group) + len(typ) + len(source) + 8)
	b.WriteString(prefix)
	b.WriteByte('.')
	b.WriteString(Token(group))
	for part := range strings.SplitSeq(typ, ".") {
		b.WriteByte('.')
		b.WriteString(Token(part))
	}
	b.WriteByte('.')
	b.WriteString(Token(source))
	return b.String()
}

// GroupFilter is the subject filter of every event of group: prefix.Token(group).>.
func GroupFilter(prefix, group string) string { return prefix + "." + Token(group) + ".>" }

// sourceToken is the last token of subject (the escaped source node).
func sourceToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// DurableName is the durable consumer of node: "routerd-" + Token(node) (consumer names
// hold no '.', so the escaped form is used as it is).
func DurableName(node string) string { return "routerd-" + Token(node) }

// MsgID is the Nats-Msg-Id of e: its id, plus "@" and expiresAt in unix nanoseconds when
// it has one, so that a TTL refresh is not dropped as a duplicate by the stream.
func MsgID(e *event.Event) string {
	if e.ExpiresAt.IsZero() {
		return e.ID
	}
	return e.ID + "@" + strconv.FormatInt(e.ExpiresAt.UnixNano(), 10)
}

// dupWindow is the stream's duplicate window: the default 2m, shorter when the stream
// keeps messages for less.
func dupWindow(maxAge time.Duration) time.Duration {
	if maxAge > 0 && maxAge < 2*time.Minute {
		return maxAge
	}
	return 2 * time.Minute
}
