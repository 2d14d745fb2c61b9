package jsonw_test

import (
	"fmt"

	"routerd.net/routerd/abi/guest/jsonw"
)

func ExampleWriter() {
	var w jsonw.Writer
	w.BeginObject()
	w.StringField("kind", "RemoteAddressClaim")
	w.Key("metadata")
	w.BeginObject()
	w.StringField("name", "onprem-10-88-60-9")
	w.StringMapFieldOmitEmpty("annotations", map[string]string{"b": "2", "a": "<1>"})
	w.EndObject()
	w.BoolField("dryRun", false)
	w.EndObject()
	fmt.Println(string(w.Bytes()))
	// Output: {"kind":"RemoteAddressClaim","metadata":{"name":"onprem-10-88-60-9","annotations":{"a":"\u003c1\u003e","b":"2"}},"dryRun":false}
}
