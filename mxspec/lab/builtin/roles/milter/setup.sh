lab-service enable lab-milter
