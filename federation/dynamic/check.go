package dynamic

import (
	"encoding/json"
	"fmt"
	"reflect"

	"routerd.net/routerd/schemas"
)

// LiveCheck returns c whose Check runs on every proposed resource the semantic and
// reference checks a config file gets (schemas.CheckProposed), against the static
// configuration plus the live parts — less the part a proposal from source for the same
// Kind and name would replace. A claim whose address lies outside its
// AddressMobilityDomain is then rejected (reason semantic, reference or conflict) as it
// is in a config file. Without a static configuration (dry-run without --config) c is
// returned unchanged. The daemon path and `routerctl plugin dry-run` both use it.
func (c Config) LiveCheck(source string, live []Part) Config {
	return c.liveCheck(source, func(yield func(Part)) {
		for _, p := range live {
			yield(p)
		}
	})
}

// liveCheck is LiveCheck over a scan of the live parts (the Manager scans its cache in
// place instead of copying every part for each batch). Of a proposal's own Kind only the
// live resource of the same name matters (see schemas.CheckProposed), so only that one and
// the live resources of other Kinds are handed on.
func (c Config) liveCheck(source string, scan func(yield func(Part))) Config {
	if c.StaticConfig == nil {
		return c
	}
	static := c.StaticConfig
	c.Check = func(obj schemas.Object) error {
		var others []schemas.Object
		scan(func(p Part) {
			if p.Source == source && p.Kind == obj.GetKind() && p.Name == obj.GetName() {
				return // the part this proposal replaces
			}
			if p.Kind == obj.GetKind() && p.Name != obj.GetName() && !schemas.ComparesSameKind(obj) {
				return
			}
			if r := p.Resource(); r != nil {
				others = append(others, r)
			}
		})
		// CheckProposed applies defaults to what it checks; the part keeps exactly what
		// the plugin wrote, so it checks a copy.
		cp, err := cloneObject(obj)
		if err != nil {
			return err
		}
		return schemas.CheckProposed(static, others, cp)
	}
	return c
}

// cloneObject deep-copies obj through its JSON form.
func cloneObject(obj schemas.Object) (schemas.Object, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("copy %s/%s: %w", obj.GetKind(), obj.GetName(), err)
	}
	cp := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(schemas.Object)
	if err := json.Unmarshal(data, cp); err != nil {
		return nil, fmt.Errorf("copy %s/%s: %w", obj.GetKind(), obj.GetName(), err)
	}
	return cp, nil
}
