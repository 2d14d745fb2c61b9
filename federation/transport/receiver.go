package transport

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/tracectx"
)

// EventStore is what the receiver needs from the node's store.
type EventStore interface {
	// InsertEvents stores events in one transaction; a known id is reported as Duplicate.
	InsertEvents(ctx context.Context, events []event.Event) ([]store.InsertResult, error)
	// ExtendExpiry raises the expiresAt of stored events (a TTL refresh from the origin).
	ExtendExpiry(ctx context.Context, events []event.Event) (int, error)
}

// ReceiverOptions configure a Receiver.
type ReceiverOptions struct {
	// Group is the event group served; events of another group are rejected.
	Group string
	// LocalNode is this router's node name; events claiming it as source are rejected.
	LocalNode string
	// Keys are the accepted secrets, each with the node names allowed to sign with it.
	Keys []Key
	// ReplayWindow bounds |now - timestamp| (default 5m).
	ReplayWindow time.Duration
	// MaxMessageAge, when longer than ReplayWindow, is how old a timestamp may be instead
	// (timestamps from the future still get only ReplayWindow): a broker transport keeps
	// signed messages for the stream's retention, so a router coming back from a long
	// outage legitimately receives old signatures. Replays are then stopped by the event
	// id (the store's primary key) rather than by the timestamp.
	MaxMessageAge time.Duration
	// MaxBatchBytes and MaxBatchEvents limit the batch form (defaults DefaultMaxBatchBytes,
	// DefaultMaxBatchEvents). A negative MaxBatchEvents disables the batch form.
	MaxBatchBytes  int64
	MaxBatchEvents int
	// Store receives accepted events.
	Store EventStore
	// Logger gets one debug line per rejection (never a secret or a body).
	Logger *slog.Logger
	// Metrics receives the receiver counters (nil: no-op).
	Metrics *Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Receiver is the HTTP handler of the wire protocol: POST /v1/events, POST
// /v1/events:batch and GET /v1/status.
type Receiver struct {
	opts     ReceiverOptions
	byID     map[string]*Key
	keyIDs   []string // sorted ids of byID, for the status
	accepted atomic.Int64
	dups     atomic.Int64
	rejected [numReasons]atomic.Int64

	replayMu   sync.Mutex
	replay     map[string]time.Time // signature of accepted batches -> expiry
	replayNext time.Time
}

var reasonIndex = func() map[Reason]int {
	m := make(map[Reason]int, len(Reasons))
	for i, r := range Reasons {
		m[r] = i
	}
	return m
}()

// NewReceiver validates opts and returns the handler.
func NewReceiver(opts ReceiverOptions) (*Receiver, error) {
	if opts.Group == "" {
		return nil, errors.New("transport: receiver: group is empty")
	}
	if opts.Store == nil {
		return nil, errors.New("transport: receiver: store is nil")
	}
	if len(opts.Keys) == 0 {
		return nil, fmt.Errorf("transport: receiver %s: no keys", opts.Group)
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = 5 * time.Minute
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.MaxBatchEvents == 0 {
		opts.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		opts.Metrics = m
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Receiver{opts: opts, byID: map[string]*Key{}, replay: map[string]time.Time{}}
	for i := range opts.Keys {
		k := &r.opts.Keys[i]
		if len(k.Secret) == 0 {
			return nil, fmt.Errorf("transport: receiver %s: key %q has an empty secret", opts.Group, k.ID)
		}
		if k.ID == "" {
			continue
		}
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("transport: receiver %s: key id %q listed twice", opts.Group, k.ID)
		}
		r.byID[k.ID] = k
		r.keyIDs = append(r.keyIDs, k.ID)
	}
	slices.Sort(r.keyIDs)
	g := attribute.String("group", opts.Group)
	for _, reason := range Reasons {
		opts.Metrics.rejects.Add(context.Background(), 0, attrs(g, attribute.String("reason", string(reason))))
	}
	opts.Metrics.duplicates.Add(context.Background(), 0, attrs(g))
	return r, nil
}

// rejection is a refused request: HTTP status, counted reason, safe message.
type rejection struct {
	status int
	reason Reason
	msg    string
}

var rejectMessages = map[Reason]rejection{
	ReasonMethod:         {http.StatusMethodNotAllowed, ReasonMethod, "method not allowed"},
	ReasonOversize:       {http.StatusRequestEntityTooLarge, ReasonOversize, "body too large"},
	ReasonReadBody:       {http.StatusBadRequest, ReasonReadBody, "cannot read body"},
	ReasonBadTimestamp:   {http.StatusBadRequest, ReasonBadTimestamp, "missing or unparsable timestamp"},
	ReasonStaleTimestamp: {http.StatusForbidden, ReasonStaleTimestamp, "timestamp outside the replay window"},
	ReasonUnknownKey:     {http.StatusUnauthorized, ReasonUnknownKey, "unknown key id"},
	ReasonBadSignature:   {http.StatusUnauthorized, ReasonBadSignature, "bad signature"},
	ReasonReplay:         {http.StatusConflict, ReasonReplay, "request already accepted"},
	ReasonBadBody:        {http.StatusBadRequest, ReasonBadBody, "malformed body"},
	ReasonValidation:     {http.StatusBadRequest, ReasonValidation, "event failed validation"},
	ReasonWrongGroup:     {http.StatusForbidden, ReasonWrongGroup, "event group not served here"},
	ReasonSpoofedSource:  {http.StatusForbidden, ReasonSpoofedSource, "event source is not the signing peer"},
	ReasonStoreError:     {http.StatusInternalServerError, ReasonStoreError, "store failure, retry later"},
}

func reject(r Reason) *rejection {
	x := rejectMessages[r]
	return &x
}

// ServeHTTP implements http.Handler.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case PathStatus:
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			r.fail(w, reject(ReasonMethod), nil)
			return
		}
		writeJSON(w, http.StatusOK, r.Status())
	case PathEvents:
		r.serveEvents(w, req, false)
	case PathBatch:
		if r.opts.MaxBatchEvents < 0 {
			http.NotFound(w, req)
			return
		}
		r.serveEvents(w, req, true)
	default:
		http.NotFound(w, req)
	}
}

// Status returns the status document.
func (r *Receiver) Status() Status {
	s := Status{
		Protocol:   ProtocolV1,
		Group:      r.opts.Group,
		Node:       r.opts.LocalNode,
		Time:       r.opts.Now().UTC().Format(time.RFC3339Nano),
		KeyIDs:     r.keyIDs,
		Extensions: Extensions{KeyID: true},
		Counters: StatusCounters{
			Accepted:  r.accepted.Load(),
			Duplicate: r.dups.Load(),
			Rejected:  make(map[Reason]int64, len(Reasons)),
		},
	}
	if r.opts.MaxBatchEvents > 0 {
		s.Extensions.Batch = &BatchExtension{Path: PathBatch, MaxEvents: r.opts.MaxBatchEvents, MaxBytes: r.opts.MaxBatchBytes}
	}
	for i, reason := range Reasons {
		s.Counters.Rejected[reason] = r.rejected[i].Load()
	}
	return s
}

// Rejected returns how many requests were rejected for reason.
func (r *Receiver) Rejected(reason Reason) int64 {
	i, ok := reasonIndex[reason]
	if !ok {
		return 0
	}
	return r.rejected[i].Load()
}

func (r *Receiver) serveEvents(w http.ResponseWriter, req *http.Request, batch bool) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.fail(w, reject(ReasonMethod), nil)
		return
	}
	limit := int64(MaxEventBytes)
	if batch {
		limit = r.opts.MaxBatchBytes
	}
	body, rej := readLimited(req, limit)
	if rej != nil {
		r.fail(w, rej, nil)
		return
	}
	key, sig, rej := r.verify(req.Header, body)
	if rej != nil {
		r.fail(w, rej, nil)
		return
	}
	events, rej := r.decode(body, batch)
	if rej != nil {
		r.fail(w, rej, nil)
		return
	}
	if rej := r.authorize(key, events); rej != nil {
		r.fail(w, rej, nil)
		return
	}
	if batch && r.seen(sig) {
		r.fail(w, reject(ReasonReplay), nil)
		return
	}
	out, dups, err := r.store(tracectx.Extract(req.Context(), propagation.HeaderCarrier(req.Header)), events)
	if err != nil {
		r.fail(w, reject(ReasonStoreError), err)
		return
	}
	if !batch {
		writeJSON(w, http.StatusOK, out[0])
		return
	}
	r.remember(sig)
	writeJSON(w, http.StatusOK, BatchResponse{Accepted: true, Count: len(out), Duplicates: dups, Results: out})
}

// store keeps verified events: an event that expired before it arrived is answered (the
// sender must stop retrying) but not stored; the rest are stored in one transaction, and
// a duplicate carrying a later expiresAt extends the stored one (TTL refresh). out
// follows events; dups counts the duplicates. An error means nothing was stored.
func (r *Receiver) store(ctx context.Context, events []event.Event) (out []AcceptResponse, dups int, err error) {
	now := r.opts.Now()
	out = make([]AcceptResponse, len(events))
	live := events
	var liveIdx []int
	expired := 0
	for i := range events {
		if events[i].Expired(now) {
			expired++
		}
	}
	if expired > 0 {
		live = make([]event.Event, 0, len(events)-expired)
		for i := range events {
			if events[i].Expired(now) {
				out[i] = AcceptResponse{Accepted: false, ID: events[i].ID, Reason: ReasonExpired}
				continue
			}
			live = append(live, events[i])
			liveIdx = append(liveIdx, i)
		}
		r.rejected[reasonIndex[ReasonExpired]].Add(int64(expired))
		r.opts.Metrics.rejects.Add(context.Background(), int64(expired), attrs(attribute.String("group", r.opts.Group), attribute.String("reason", string(ReasonExpired))))
		r.opts.Logger.Debug("receiver: dropped expired events", "group", r.opts.Group, "count", expired)
	}
	var res []store.InsertResult
	if len(live) > 0 {
		// The receive span continues the sender's trace (the caller put the traceparent
		// header, when sent, into ctx) and is stored with the events for the work done
		// on them later.
		sctx, span := tracectx.Start(ctx, "eventd.receive", nil)
		if span.IsRecording() {
			span.SetAttributes(attribute.String("routerd.group", r.opts.Group), attribute.Int("routerd.events", len(live)))
		}
		res, err = r.opts.Store.InsertEvents(sctx, live)
		span.End()
		if err != nil || len(res) != len(live) {
			if err == nil {
				err = fmt.Errorf("store returned %d results for %d events", len(res), len(live))
			}
			return nil, 0, err
		}
	}
	bg := context.Background()
	for j, x := range res {
		i := j
		if liveIdx != nil {
			i = liveIdx[j]
		}
		out[i] = AcceptResponse{Accepted: true, ID: events[i].ID, Duplicate: x.Duplicate}
		if x.Duplicate {
			dups++
			continue
		}
		r.opts.Metrics.accepted.Add(bg, 1, attrs(attribute.String("group", r.opts.Group), attribute.String("event_type", events[i].Type)))
	}
	r.accepted.Add(int64(len(res) - dups))
	if dups > 0 {
		// A duplicate may be a TTL refresh: keep the later expiresAt.
		var refreshed []event.Event
		for j, x := range res {
			if x.Duplicate && !live[j].ExpiresAt.IsZero() {
				refreshed = append(refreshed, live[j])
			}
		}
		if len(refreshed) > 0 {
			if _, err := r.opts.Store.ExtendExpiry(ctx, refreshed); err != nil {
				return nil, 0, err
			}
		}
		r.dups.Add(int64(dups))
		r.opts.Metrics.duplicates.Add(bg, int64(dups), attrs(attribute.String("group", r.opts.Group)))
	}
	return out, dups, nil
}

// SignedMessage is one event as a message broker delivers it: the v1 headers
// (HeaderTimestamp, HeaderSignature, optionally HeaderKeyID) and the event's JSON, signed
// exactly like the body of a v1 POST.
type SignedMessage struct {
	Header http.Header
	Body   []byte
}

// MessageResult is what AcceptMessages did with one message: Rejected is the reason it
// was refused (counted like an HTTP rejection; "" when it was not), else Response says
// whether it was stored, a duplicate or already expired.
type MessageResult struct {
	Rejected Reason
	Response AcceptResponse
}

// AcceptMessages is the receiver for a message broker: every message is checked exactly
// as the body of a v1 POST of one event (size, timestamp, key and signature, JSON,
// validation, group, source node; see verify), and the accepted ones are stored together
// in one transaction, with duplicates and TTL refreshes handled as for HTTP. Results
// follow msgs. An error is a store failure: nothing was stored and the caller should
// deliver every message again.
func (r *Receiver) AcceptMessages(ctx context.Context, msgs []SignedMessage) ([]MessageResult, error) {
	out := make([]MessageResult, len(msgs))
	events := make([]event.Event, 0, len(msgs))
	idx := make([]int, 0, len(msgs))
	for i, m := range msgs {
		ev, rej := r.check(m.Header, m.Body)
		if rej != nil {
			r.count(rej, nil)
			out[i].Rejected = rej.reason
			continue
		}
		events = append(events, ev)
		idx = append(idx, i)
	}
	if len(events) == 0 {
		return out, nil
	}
	res, _, err := r.store(ctx, events)
	if err != nil {
		r.count(reject(ReasonStoreError), err)
		return nil, err
	}
	for j, i := range idx {
		out[i].Response = res[j]
	}
	return out, nil
}

// check verifies one single-event message: size, then verify, decode and authorize.
func (r *Receiver) check(h http.Header, body []byte) (event.Event, *rejection) {
	if len(body) > MaxEventBytes {
		return event.Event{}, reject(ReasonOversize)
	}
	key, _, rej := r.verify(h, body)
	if rej != nil {
		return event.Event{}, rej
	}
	events, rej := r.decode(body, false)
	if rej != nil {
		return event.Event{}, rej
	}
	if rej := r.authorize(key, events); rej != nil {
		return event.Event{}, rej
	}
	return events[0], nil
}

// readLimited reads at most limit bytes of the body; more is oversize.
func readLimited(req *http.Request, limit int64) ([]byte, *rejection) {
	if req.ContentLength > limit {
		return nil, reject(ReasonOversize)
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, reject(ReasonReadBody)
	}
	if n > limit {
		return nil, reject(ReasonOversize)
	}
	return buf.Bytes(), nil
}

// verify checks a request's timestamp and signature, in the receiver's order: timestamp
// present and decimal, timestamp inside ±ReplayWindow of now (back to MaxMessageAge when
// that is longer), key id known (when the
// header is present), signature valid (constant time, every candidate key tried when
// no key id is given). It returns the key that verified and the raw signature.
func (r *Receiver) verify(h http.Header, body []byte) (*Key, []byte, *rejection) {
	tsText := h.Get(HeaderTimestamp)
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || tsText == "" || tsText[0] == '+' {
		return nil, nil, reject(ReasonBadTimestamp)
	}
	now := r.opts.Now().Unix()
	window := int64(r.opts.ReplayWindow / time.Second)
	past := max(window, int64(r.opts.MaxMessageAge/time.Second))
	if d := now - ts; d > past || d < -window {
		return nil, nil, reject(ReasonStaleTimestamp)
	}
	sigText := h.Get(HeaderSignature)
	sig, err := hex.DecodeString(sigText)
	if err != nil || len(sig) != 32 {
		return nil, nil, reject(ReasonBadSignature)
	}
	if id := h.Get(HeaderKeyID); id != "" {
		k, ok := r.byID[id]
		if !ok {
			return nil, nil, reject(ReasonUnknownKey)
		}
		if !verifySig(k.Secret, tsText, body, sig) {
			return nil, nil, reject(ReasonBadSignature)
		}
		return k, sig, nil
	}
	for i := range r.opts.Keys {
		k := &r.opts.Keys[i]
		if verifySig(k.Secret, tsText, body, sig) {
			return k, sig, nil
		}
	}
	return nil, nil, reject(ReasonBadSignature)
}

// decode parses one event (v1) or a batch and validates every event.
func (r *Receiver) decode(body []byte, batch bool) ([]event.Event, *rejection) {
	if !batch {
		var e event.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, decodeRejection(err)
		}
		if err := e.Validate(); err != nil {
			return nil, reject(ReasonValidation)
		}
		return []event.Event{e}, nil
	}
	var b struct {
		Events []event.Event `json:"events"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, decodeRejection(err)
	}
	events := b.Events
	if len(events) == 0 || len(events) > r.opts.MaxBatchEvents {
		return nil, reject(ReasonBadBody)
	}
	for i := range events {
		if err := events[i].Validate(); err != nil {
			return nil, reject(ReasonValidation)
		}
	}
	return events, nil
}

// decodeRejection tells malformed JSON (bad_body) from a well-formed event with a bad
// field, such as an unparsable time (validation).
func decodeRejection(err error) *rejection {
	var fe *event.FieldError
	if errors.As(err, &fe) {
		return reject(ReasonValidation)
	}
	return reject(ReasonBadBody)
}

// authorize checks group and source: every event must belong to the served group and
// come from a node the verifying key belongs to (never from this node).
func (r *Receiver) authorize(k *Key, events []event.Event) *rejection {
	for i := range events {
		if events[i].Group != r.opts.Group {
			return reject(ReasonWrongGroup)
		}
	}
	for i := range events {
		src := events[i].SourceNode
		if src == "" || src == r.opts.LocalNode || !k.allows(src) {
			return reject(ReasonSpoofedSource)
		}
	}
	return nil
}

// seen reports whether a batch with this signature was accepted inside the window.
func (r *Receiver) seen(sig []byte) bool {
	r.replayMu.Lock()
	defer r.replayMu.Unlock()
	exp, ok := r.replay[string(sig)]
	return ok && r.opts.Now().Before(exp)
}

// remember records an accepted batch signature until its timestamp leaves the window.
func (r *Receiver) remember(sig []byte) {
	now := r.opts.Now()
	r.replayMu.Lock()
	defer r.replayMu.Unlock()
	if now.After(r.replayNext) {
		for s, exp := range r.replay {
			if now.After(exp) {
				delete(r.replay, s)
			}
		}
		r.replayNext = now.Add(r.opts.ReplayWindow / 4)
	}
	r.replay[string(sig)] = now.Add(2 * r.opts.ReplayWindow)
}

func (r *Receiver) fail(w http.ResponseWriter, rej *rejection, err error) {
	r.count(rej, err)
	writeJSON(w, rej.status, ErrorResponse{Accepted: false, Reason: rej.reason, Error: rej.msg})
}

// count records a rejection in the counters, the metrics and the log.
func (r *Receiver) count(rej *rejection, err error) {
	r.rejected[reasonIndex[rej.reason]].Add(1)
	r.opts.Metrics.reject(r.opts.Group, rej.reason)
	if err != nil {
		r.opts.Logger.Warn("receiver: rejected request", "group", r.opts.Group, "reason", rej.reason, "err", err)
	} else {
		r.opts.Logger.Debug("receiver: rejected request", "group", r.opts.Group, "reason", rej.reason)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"accepted":false,"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
