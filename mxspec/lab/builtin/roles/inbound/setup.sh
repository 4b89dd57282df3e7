postmap /etc/postfix/relay_recipients
newaliases
lab-service enable postfix
lab-service enable rspamd
