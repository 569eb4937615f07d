module github.com/olreg/olreg-go

go 1.24
