module example.com/staticpack/go-static-base

go 1.19
