module medguard

go 1.26.8
