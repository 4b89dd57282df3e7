unbound-checkconf >/dev/null
lab-service enable unbound
