module github.com/pixelstream/pixelstream/services/enricher

go 1.26.8
