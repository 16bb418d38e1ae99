module github.com/pixelstream/pixelstream/services/edge

go 1.26.8
