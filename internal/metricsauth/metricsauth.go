// Package metricsauth guards the operator's metrics endpoint: a request is
// served only when the API server authenticates its bearer token (a
// TokenReview) and authorizes that user to get the URL's path (a
// SubjectAccessReview on a non-resource URL), as controller-runtime's
// filters.WithAuthenticationAndAuthorization does.
//
// That filter is built on k8s.io/apiserver's delegating authenticator and
// authorizer, which link the API server's authorization stack (CEL
// included) into the binary, and every process of the one stash binary,
// each backup step too, pays for their package initialization when it
// starts. This package asks the same two questions with client-go's typed
// clients, which the binary links already.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// How long a decision is remembered: an allowed client is asked about
// again after a minute, so a revoked token or role stops working within
// one; refusals are kept briefly, so that a client without a token cannot
// make the operator send the API server a review per request.
const (
	allowTTL      = time.Minute
	denyTTL       = 10 * time.Second
	reviewTimeout = 10 * time.Second
	// maxDecisions bounds the memory the remembered decisions take, each
	// a hash of a token and a path, whoever sends requests.
	maxDecisions = 1024
)

// reviewer asks the API server about a token and a user.
type reviewer interface {
	// authenticate returns the token's user, or ok false when the token
	// is not valid.
	authenticate(ctx context.Context, token string) (user authenticationv1.UserInfo, ok bool, err error)
	// authorize says whether user may use verb on the non-resource path.
	authorize(ctx context.Context, user authenticationv1.UserInfo, verb, path string) (bool, error)
}

// Provider is a metricsserver.Options FilterProvider: the filter it makes
// reviews each request with the API server of config.
func Provider(config *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authn, err := authnclient.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metrics authentication client: %w", err)
	}
	authz, err := authzclient.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metrics authorization client: %w", err)
	}
	g := newGuard(apiReviewer{authn: authn, authz: authz}, time.Now)
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return g.handler(log, next), nil
	}, nil
}

// guard is the filter's state: the reviewer and its remembered decisions.
type guard struct {
	rev reviewer
	now func() time.Time

	mu        sync.Mutex
	decisions map[[sha256.Size]byte]decision
}

// decision is a remembered answer to one token and path.
type decision struct {
	code    int // http.StatusOK, StatusUnauthorized or StatusForbidden
	user    string
	expires time.Time
}

func newGuard(rev reviewer, now func() time.Time) *guard {
	return &guard{rev: rev, now: now, decisions: map[[sha256.Size]byte]decision{}}
}

func (g *guard) handler(log logr.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		d, err := g.decide(req)
		if err != nil {
			log.Error(err, "Metrics request not reviewed", "path", req.URL.Path)
			http.Error(w, "authentication or authorization failed", http.StatusInternalServerError)
			return
		}
		switch d.code {
		case http.StatusOK:
			next.ServeHTTP(w, req)
		case http.StatusUnauthorized:
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
		default:
			http.Error(w, fmt.Sprintf("Authorization denied for user %s", d.user), http.StatusForbidden)
		}
	})
}

// decide returns the decision on req, remembered or asked for.
func (g *guard) decide(req *http.Request) (decision, error) {
	token, ok := bearerToken(req)
	if !ok {
		return decision{code: http.StatusUnauthorized}, nil
	}
	verb, path := strings.ToLower(req.Method), req.URL.Path
	// The token itself is never kept, only a hash of it with what it asked.
	key := sha256.Sum256([]byte(token + "\x00" + verb + "\x00" + path))
	now := g.now()
	g.mu.Lock()
	d, found := g.decisions[key]
	g.mu.Unlock()
	if found && now.Before(d.expires) {
		return d, nil
	}
	ctx, cancel := context.WithTimeout(req.Context(), reviewTimeout)
	defer cancel()
	user, ok, err := g.rev.authenticate(ctx, token)
	switch {
	case err != nil:
		return decision{}, fmt.Errorf("review token: %w", err)
	case !ok:
		d = decision{code: http.StatusUnauthorized, expires: now.Add(denyTTL)}
	default:
		allowed, err := g.rev.authorize(ctx, user, verb, path)
		if err != nil {
			return decision{}, fmt.Errorf("review access of %s to %s: %w", user.Username, path, err)
		}
		d = decision{code: http.StatusForbidden, user: user.Username, expires: now.Add(denyTTL)}
		if allowed {
			d.code, d.expires = http.StatusOK, now.Add(allowTTL)
		}
	}
	g.remember(key, d, now)
	return d, nil
}

// remember keeps d, first dropping expired decisions, and all of them if
// the map is still full.
func (g *guard) remember(key [sha256.Size]byte, d decision, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.decisions) >= maxDecisions {
		for k, old := range g.decisions {
			if !now.Before(old.expires) {
				delete(g.decisions, k)
			}
		}
		if len(g.decisions) >= maxDecisions {
			clear(g.decisions)
		}
	}
	g.decisions[key] = d
}

// bearerToken returns the request's bearer token, as the API server reads
// one: "Bearer" in any case, then a non-empty token.
func bearerToken(req *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(req.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// apiReviewer asks the API server with TokenReviews and
// SubjectAccessReviews.
type apiReviewer struct {
	authn authnclient.TokenReviewsGetter
	authz authzclient.SubjectAccessReviewsGetter
}

func (a apiReviewer) authenticate(ctx context.Context, token string) (authenticationv1.UserInfo, bool, error) {
	tr, err := a.authn.TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, false, err
	}
	// A token the API server refuses comes back with its reason in
	// Status.Error, which is not passed on: the client learns 401 only.
	return tr.Status.User, tr.Status.Authenticated, nil
}

func (a apiReviewer) authorize(ctx context.Context, user authenticationv1.UserInfo, verb, path string) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := a.authz.SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return sar.Status.Allowed && !sar.Status.Denied, nil
}
