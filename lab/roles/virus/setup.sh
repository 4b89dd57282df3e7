chown -R clamav:clamav /var/lib/clamav
# The init script refuses to start clamd without Debian's main/daily databases; the lab ships
# its own signatures instead (systemd hosts get the same through a unit drop-in).
sed -i 's/^  for db in main daily; do$/  for db in; do/' /etc/init.d/clamav-daemon
lab-service enable clamav-daemon
lab-service enable clamav-milter
