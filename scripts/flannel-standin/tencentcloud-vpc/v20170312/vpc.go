// Package v20170312 declares the part of the Tencent Cloud VPC API that flannel's tencentvpc
// backend calls. Every call returns ErrUnavailable: kubeprov's flanneld never uses that backend.
package v20170312

import "errors"

// ErrUnavailable is what every call returns.
var ErrUnavailable = errors.New("the Tencent Cloud VPC backend is not available in this flanneld build (kubeprov uses host-gw or vxlan)")

type Client struct{}

func NewClientWithSecretId(secretID, secretKey, region string) (*Client, error) {
	return nil, ErrUnavailable
}

type Filter struct {
	Name   *string
	Values []*string
}

type Route struct {
	DestinationCidrBlock *string
	GatewayType          *string
	GatewayId            *string
	RouteId              *uint64
	RouteType            *string
	Enabled              *bool
}

type RouteTable struct {
	RouteTableId *string
	RouteSet     []*Route
}

type DescribeRouteTablesRequest struct{ Filters []*Filter }

type DescribeRouteTablesResponse struct {
	Response *struct{ RouteTableSet []*RouteTable }
}

type DeleteRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type CreateRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type DeleteRoutesResponse struct{}

type CreateRoutesResponse struct{}

func NewDescribeRouteTablesRequest() *DescribeRouteTablesRequest { return &DescribeRouteTablesRequest{} }

func NewDeleteRoutesRequest() *DeleteRoutesRequest { return &DeleteRoutesRequest{} }

func NewCreateRoutesRequest() *CreateRoutesRequest { return &CreateRoutesRequest{} }

func (c *Client) DescribeRouteTables(r *DescribeRouteTablesRequest) (*DescribeRouteTablesResponse, error) {
	return nil, ErrUnavailable
}

func (c *Client) DeleteRoutes(r *DeleteRoutesRequest) (*DeleteRoutesResponse, error) {
	return nil, ErrUnavailable
}

func (c *Client) CreateRoutes(r *CreateRoutesRequest) (*CreateRoutesResponse, error) {
	return nil, ErrUnavailable
}
