# Every lab host starts with only SSH; each role enables what it runs.
for service in postfix opendkim clamav-daemon clamav-milter rspamd unbound spamd spamass-milter cron; do
    [ -e "/etc/init.d/$service" ] || [ -e "/lib/systemd/system/$service.service" ] || continue
    lab-service disable "$service"
done
# No signature downloads: the lab is offline and ships its own signatures.
for service in clamav-freshclam clamav-freshclam-once.timer; do lab-service mask "$service" 2>/dev/null || true; done
lab-service enable ssh
update-ca-certificates >/dev/null 2>&1 || true
# An unprivileged operator account, ops, as on a production host (its key is the lab key, put in
# /home/ops/.ssh/authorized_keys with root's when the host is made). Not "operator": Debian
# already has a system group of that name.
id ops >/dev/null 2>&1 || useradd --no-create-home --home-dir /home/ops --shell /bin/sh ops
chmod 0440 /etc/sudoers.d/ops
