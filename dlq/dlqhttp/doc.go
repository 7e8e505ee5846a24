// Package dlqhttp serves a dead-letter store over HTTP: the REST API with
// which an operator lists, inspects, replays and discards queued work, and
// the JSON types of its answers, so that a server mounts the API and a
// client decodes it from one definition.
//
// It lives beside package dlq rather than in it so that a program that only
// stores and replays messages does not link net/http. Authentication and
// the defences against web pages are the mounting server's job: Handler
// serves whoever reaches it.
//
// A message's request (method, target, host, headers) is read from the
// keys a proxy stores it under (KeyMethod, KeyURI, KeyHeaderPrefix...);
// other messages show their counts, times and body without a request.
package dlqhttp
