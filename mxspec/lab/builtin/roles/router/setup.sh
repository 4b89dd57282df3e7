postmap /etc/postfix/transport
newaliases
lab-service enable postfix
lab-service enable lab-apply.path
