chown -R clamav:clamav /var/lib/clamav
# The init script refuses to start clamd without Debian's main/daily databases; the lab ships
# its own signatures instead (systemd hosts get the same through a unit drop-in).
sed -i 's/^  for db in main daily; do$/  for db in; do/' /etc/init.d/clamav-daemon
lab-service enable clamav-daemon
lab-service enable clamav-milter
# A daemonizing clamav-milter's parent waits for its child to report ready, and now and then that
# report is lost: the init script then never returns. On SysV hosts it stopped the boot before sshd
# (startpar); on systemd hosts (which run the same script through the SysV generator) it left the
# unit "activating" for its 5-minute start timeout, and the lab not ready. Started with
# --background, the script returns at once; the milter is running when its socket answers (what
# the lab's readiness check waits for).
sed -i 's|start-stop-daemon --start --oknodo --exec $DAEMON|start-stop-daemon --start --oknodo --background --exec $DAEMON|' /etc/init.d/clamav-milter
grep -q -- '--background --exec $DAEMON' /etc/init.d/clamav-milter
