module gorun.local/goprogs

go 1.22
