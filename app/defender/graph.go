package defender

import (
	"encoding/json"
	"errors"
	"net/http"
)

// What Microsoft Graph says differently from the Alert API: its error body.

// graphInner is Graph's innerError, which may hold another innerError.
type graphInner struct {
	RequestID string      `json:"request-id"`
	Date      string      `json:"date"`
	Inner     *graphInner `json:"innerError"`
}

// graphErrorBody reads {"error": {"code", "message", "innerError": {"request-id", "date",
// "innerError": …}}}. The request-id and date are the outermost ones given (the first a
// nested innerError holds, if the outer one has none); the reply's request-id header stands in
// when the body names none. A member of the wrong type is left out, not the whole body.
func graphErrorBody(h http.Header, body []byte) errorBody {
	var doc struct {
		Error struct {
			Code       string      `json:"code"`
			Message    string      `json:"message"`
			InnerError *graphInner `json:"innerError"`
		} `json:"error"`
	}
	var eb errorBody
	if err := json.Unmarshal(body, &doc); err == nil || errors.As(err, new(*json.UnmarshalTypeError)) {
		eb.code, eb.message = oneLine(doc.Error.Code, 64), oneLine(doc.Error.Message, 300)
		for in, depth := doc.Error.InnerError, 0; in != nil && depth < 32; in, depth = in.Inner, depth+1 {
			if eb.requestID == "" {
				eb.requestID = oneLine(in.RequestID, 64)
			}
			if eb.date == "" {
				eb.date = oneLine(in.Date, 40)
			}
		}
	}
	if eb.requestID == "" {
		eb.requestID = oneLine(h.Get("request-id"), 64)
	}
	return eb
}
