package qualify

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkQualifyShort measures qualify_short_s: the wall time of one short cycle of all
// eight scenarios (what make test runs), target <= 120 s on 2 cores.
func BenchmarkQualifyShort(b *testing.B) {
	bs := buildBins(b)
	var wall float64
	for b.Loop() {
		o := options(b, bs)
		rep, err := Run(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Result != Pass {
			b.Fatalf("run %s: %s: %v", rep.RunID, rep.Result, rep.Reasons)
		}
		wall = rep.WallS
	}
	fmt.Printf("BENCH qualify_short_s %.1f s\n", wall)
}
