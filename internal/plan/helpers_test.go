package plan_test

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

func metaNS(name, ns string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }
