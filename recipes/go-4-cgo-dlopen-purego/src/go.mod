module example.com/staticpack/go-4-cgo-dlopen-purego

go 1.19
