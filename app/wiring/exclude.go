package wiring

import (
	"context"
	"encoding/json"
	"slices"

	"ta-defender-alerts/app/bridge"
)

// excluding leaves out of src's records the Graph alerts of the service sources named (the
// graph-alerts feed's DEFENDER_GRAPH_EXCLUDE_SOURCES), so that a site that also reads Defender
// for Endpoint through the Alert API does not index those alerts twice. A record left out is
// never handed to the sink; the records after it carry positions past it, so a window's
// checkpoint covers it like any other, and a restart that reads it again leaves it out again.
// With no sources named it is src itself.
func excluding(src bridge.Source, sources []string) bridge.Source {
	if len(sources) == 0 {
		return src
	}
	return excludeSource{src: src, sources: sources}
}

type excludeSource struct {
	src     bridge.Source
	sources []string
}

func (e excludeSource) Read(ctx context.Context, w bridge.Window, emit func(bridge.Record, bridge.Position) error) (bridge.SourceStats, error) {
	return e.src.Read(ctx, w, func(r bridge.Record, p bridge.Position) error {
		var a struct {
			ServiceSource string `json:"serviceSource"`
		}
		// A record whose serviceSource cannot be read is kept: leaving it out could lose it.
		if json.Unmarshal(r.Data, &a) == nil && slices.Contains(e.sources, a.ServiceSource) {
			return nil
		}
		return emit(r, p)
	})
}
