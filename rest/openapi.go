package rest

import (
	"encoding/json"
	"sort"
	"strings"
)

// openAPI builds the OpenAPI 3 document of eps.
func openAPI(eps []*endpoint) []byte {
	param := func(name, desc string, required bool, schema map[string]any) map[string]any {
		return map[string]any{"name": name, "in": "query", "required": required, "description": desc, "schema": schema}
	}
	str := map[string]any{"type": "string"}
	params := []any{
		param("sdkappid", "the app's SDKAppID", true, map[string]any{"type": "integer", "format": "int64"}),
		param("identifier", "the app admin identifier", true, str),
		param("usersig", "a UserSig of the admin", true, str),
		param("random", "a random 32-bit unsigned integer", true, map[string]any{"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295}),
		param("contenttype", "json", false, map[string]any{"type": "string", "enum": []string{"json"}}),
	}
	envelope := map[string]any{"type": "object", "required": []string{"ActionStatus", "ErrorCode", "ErrorInfo"},
		"properties": map[string]any{
			"ActionStatus": map[string]any{"type": "string", "enum": []string{"OK", "FAIL"}},
			"ErrorCode":    map[string]any{"type": "integer"},
			"ErrorInfo":    str,
		}, "additionalProperties": true}
	paths := map[string]any{}
	for _, ep := range eps {
		props := map[string]any{}
		fields := append([]string(nil), ep.Request...)
		sort.Strings(fields)
		for _, f := range fields {
			props[f] = map[string]any{}
		}
		paths["/v4/"+ep.Path] = map[string]any{"post": map[string]any{
			"operationId": strings.ReplaceAll(ep.Path, "/", "_"),
			"summary":     ep.Summary,
			"parameters":  params,
			"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"type": "object", "properties": props}}}},
			"responses": map[string]any{"200": map[string]any{"description": "Tencent envelope; HTTP is always 200",
				"content": map[string]any{"application/json": map[string]any{"schema": envelope}}}},
		}}
	}
	paths["/v4/openapi.json"] = map[string]any{"get": map[string]any{"operationId": "openapi", "summary": "this document",
		"responses": map[string]any{"200": map[string]any{"description": "OpenAPI 3 document"}}}}
	doc, _ := json.MarshalIndent(map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "imbroker v4 admin API (Tencent Cloud IM compatible)", "version": "1",
			"description": "See docs/rest.md. Every response is HTTP 200 with the {ActionStatus, ErrorCode, ErrorInfo} envelope."},
		"paths": paths,
	}, "", "  ")
	return doc
}
