package guest

import "routerd.net/routerd/abi"

// The view API: the request decoded by the same scanner as for typed handlers, but into
// buffers the SDK reuses from call to call, with each event's payload kept as a list of
// fields instead of a map. Inside a Go Wasm guest every allocation and every map
// operation is expensive (ten payload maps were about a third of decoding the 10-event
// batch), so a hot handler that only reads a few payload fields uses a view.

// Field is one member of an event's payload.
type Field struct {
	// Key is the member name.
	Key string
	// Value is the member's string value ("" for null).
	Value string
}

// EventView is one event of a RequestView.
type EventView struct {
	// Event is the envelope; its Payload is always nil (see Payload and PayloadFields).
	Event abi.Event
	// fields is the payload in document order; lo and hi index the decoder's field list
	// while decoding.
	fields         []Field
	lo, hi         int
	payloadPresent bool
}

// PayloadFields returns the payload's members in document order, duplicates included
// (when a key repeats, the last one is what a map would hold). The slice is only valid
// during the call.
func (e *EventView) PayloadFields() []Field { return e.fields }

// Payload returns the payload value of key and whether the payload has the key (the last
// occurrence when it repeats, as in a map).
func (e *EventView) Payload(key string) (string, bool) {
	for i := len(e.fields) - 1; i >= 0; i-- {
		if e.fields[i].Key == key {
			return e.fields[i].Value, true
		}
	}
	return "", false
}

// ToEvent returns the event with its payload as a map, exactly as a typed handler would
// see it (this allocates; the strings are only valid during the call unless copied).
func (e *EventView) ToEvent() abi.Event {
	ev := e.Event
	if e.payloadPresent {
		ev.Payload = make(map[string]string, len(e.fields))
		for _, f := range e.fields {
			ev.Payload[f.Key] = f.Value
		}
	}
	return ev
}

// RequestView is a PluginRequest decoded for a ViewHandler. Every string and byte slice
// it holds (context resources included), and the Events slice, are only valid during the
// call: the SDK reuses their memory for the next request, and strings of compact events
// point straight into the request bytes. Copy what must outlive the call.
type RequestView struct {
	// Request holds every field of the request except Spec.Events, which is always nil.
	Request abi.Request
	// Events are the request's spec.events (nil when absent or null).
	Events []EventView
}

// ToRequest returns the request as a typed handler would receive it (this allocates the
// events and their payload maps; strings stay valid only during the call unless copied).
func (v *RequestView) ToRequest() *abi.Request {
	r := v.Request
	if v.Events != nil {
		r.Spec.Events = make([]abi.Event, len(v.Events))
		for i := range v.Events {
			r.Spec.Events[i] = v.Events[i].ToEvent()
		}
	}
	return &r
}

// ViewHandler is a hook handler that receives the request as a RequestView. It returns
// the PluginResult like a Handler; the result is encoded before the view's memory is
// reused, so it may point into the view.
type ViewHandler func(req *RequestView) (*abi.Result, error)

// OnEventsView registers a view handler for on_events (instead of OnEvents).
func OnEventsView(h ViewHandler) { HandleView(abi.HookOnEvents, h) }

// HandleView registers a view handler for hook. It panics on an unknown hook or a second
// registration for the same hook.
func HandleView(hook abi.Hook, h ViewHandler) {
	id := mustSlot(hook)
	registry.view[id] = h
}

// DecodeRequestView decodes a PluginRequest like DecodeRequest, into a view whose memory
// is reused by the next DecodeRequestView call (from any goroutine: not safe for
// concurrent use). It accepts and refuses exactly what DecodeRequest does.
func DecodeRequestView(data []byte) (*RequestView, error) {
	return viewDecoder.requestView(data)
}

// viewDecoder backs DecodeRequestView (dispatch uses registry.dec).
var viewDecoder decoder

// requestView decodes data into d's reused view.
func (d *decoder) requestView(data []byte) (*RequestView, error) {
	v := &d.view
	*v = RequestView{Events: v.Events[:0]}
	d.fields = d.fields[:0]
	if cap(d.keep) < len(data) {
		d.keep = make([]byte, 0, len(data)+len(data)/4)
	}
	d.viewMode = true
	defer func() { d.viewMode = false }()
	if err := d.decodeRequest(data, d.keep[:0], &v.Request); err != nil {
		return nil, err
	}
	if !d.eventsPresent {
		v.Events = nil
	}
	for i := range v.Events {
		e := &v.Events[i]
		e.fields = d.fields[e.lo:e.hi:e.hi]
	}
	return v, nil
}
