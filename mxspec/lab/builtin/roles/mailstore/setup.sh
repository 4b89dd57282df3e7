getent group vmail >/dev/null || groupadd -g 5000 vmail
getent passwd vmail >/dev/null || useradd -u 5000 -g vmail -d /var/mail/vhosts -s /usr/sbin/nologin vmail
mkdir -p /var/mail/vhosts && chown vmail:vmail /var/mail/vhosts
postmap /etc/postfix/vmailbox
newaliases
lab-service enable postfix
