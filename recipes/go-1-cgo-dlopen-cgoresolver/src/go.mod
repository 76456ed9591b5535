module example.com/staticpack/go-1-cgo-dlopen-cgoresolver

go 1.19
