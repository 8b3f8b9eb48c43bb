package plan

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSessionTimeout(t *testing.T) {
	for _, tt := range []struct {
		name     string
		timeOut  *metav1.Duration
		fallback time.Duration
		want     time.Duration
	}{
		{"timeOut set", &metav1.Duration{Duration: time.Hour}, 2 * time.Hour, time.Hour},
		{"no timeOut: the runtime's default", nil, 2 * time.Hour, 2 * time.Hour},
		{"zero timeOut: the runtime's default", &metav1.Duration{}, 2 * time.Hour, 2 * time.Hour},
		{"negative timeOut: the runtime's default", &metav1.Duration{Duration: -time.Second}, 2 * time.Hour, 2 * time.Hour},
		{"neither: the shared default", nil, 0, DefaultSessionTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := SessionTimeout(tt.timeOut, tt.fallback); got != tt.want {
				t.Errorf("SessionTimeout = %s, want %s", got, tt.want)
			}
		})
	}
}
