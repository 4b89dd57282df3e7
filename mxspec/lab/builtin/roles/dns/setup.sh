# Authoritative for the lab only: no DNSSEC trust anchor for the (refused) root.
rm -f /etc/unbound/unbound.conf.d/root-auto-trust-anchor-file.conf
unbound-checkconf >/dev/null
lab-service enable unbound
