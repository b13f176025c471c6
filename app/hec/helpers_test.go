package hec_test

import (
	"net/http"
	"strings"
)

func httpRequest(url, body string) (*http.Request, error) {
	return http.NewRequest(http.MethodPost, url, strings.NewReader(body))
}

func httpDo(req *http.Request) (int, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
